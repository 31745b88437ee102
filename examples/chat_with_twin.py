import os

import requests

class TwinExpertAPI:
    def __init__(self, api_key):
        self.api_key = api_key
        self.base_url = os.environ['TWINEXPERT_API_URL']
        self.headers = {
            'Authorization': f'Bearer {api_key}',
            'Content-Type': 'application/json'
        }

    def create_conversation(self, twin_id, title="API Chat"):
        response = requests.post(
            f'{self.base_url}/conversations',
            headers=self.headers,
            json={'twinId': twin_id, 'title': title}
        )
        return response.json()['data']

    def send_message(self, conversation_id, message):
        response = requests.post(
            f'{self.base_url}/conversations/{conversation_id}/messages',
            headers=self.headers,
            json={'content': message}
        )
        return response.json()['data']

    def chat_with_twin(self, twin_id, message):
        # Tạo cuộc trò chuyện
        conversation = self.create_conversation(twin_id)

        # Gửi tin nhắn
        result = self.send_message(conversation['id'], message)
        return result

# Sử dụng
api = TwinExpertAPI(os.environ['TWINEXPERT_API_KEY'])
response = api.chat_with_twin(os.environ['TWINEXPERT_TWIN_ID'], 'Xin chào!')
print(response)
